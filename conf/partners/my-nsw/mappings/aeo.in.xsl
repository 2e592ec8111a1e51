<?xml version="1.0" encoding="UTF-8"?>
<!-- my-nsw AEO list, inbound: Customs Malaysia's MRA list -> canonical AEO list (inverse of aeo.out.xsl). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:my="urn:my:customs:aeo:1" xmlns:cl="urn:swgw:codelists"
    xmlns:aeo="urn:swgw:canonical:aeo:1" exclude-result-prefixes="my cl">
  <xsl:output method="xml" encoding="UTF-8" indent="yes"/>

  <xsl:template match="/my:AeoList">
    <aeo:AEOOperatorList>
      <aeo:Header>
        <aeo:ListID><xsl:value-of select="@id"/></aeo:ListID>
        <aeo:ListTypeCode><xsl:value-of select="cl:translate('aeo-list-type', @kind)"/></aeo:ListTypeCode>
        <xsl:if test="@base"><aeo:BasedOnListID><xsl:value-of select="@base"/></aeo:BasedOnListID></xsl:if>
        <aeo:IssuingCountryID><xsl:value-of select="cl:translate('country', @country)"/></aeo:IssuingCountryID>
        <aeo:IssuingAuthorityName><xsl:value-of select="my:Authority"/></aeo:IssuingAuthorityName>
        <aeo:IssueDateTime><xsl:value-of select="@issued"/></aeo:IssueDateTime>
        <xsl:if test="@mra"><aeo:MRAReference><xsl:value-of select="@mra"/></aeo:MRAReference></xsl:if>
      </aeo:Header>
      <xsl:apply-templates select="my:Company"/>
    </aeo:AEOOperatorList>
  </xsl:template>

  <xsl:template match="/*" priority="-1">
    <xsl:message terminate="yes">my-nsw aeo: root element <xsl:value-of select="name()"/> is not a my:AeoList</xsl:message>
  </xsl:template>

  <xsl:template match="my:Company">
    <aeo:Operator>
      <xsl:if test="@action"><aeo:ActionCode><xsl:value-of select="cl:translate('aeo-action', @action)"/></aeo:ActionCode></xsl:if>
      <aeo:OperatorID schemeID="{@idType}"><xsl:value-of select="@id"/></aeo:OperatorID>
      <xsl:if test="my:CompanyName"><aeo:Name><xsl:value-of select="my:CompanyName"/></aeo:Name></xsl:if>
      <xsl:for-each select="my:Addr">
        <aeo:Address>
          <xsl:if test="@line"><aeo:LineOne><xsl:value-of select="@line"/></aeo:LineOne></xsl:if>
          <xsl:if test="@city"><aeo:CityName><xsl:value-of select="@city"/></aeo:CityName></xsl:if>
          <xsl:if test="@postcode"><aeo:PostcodeCode><xsl:value-of select="@postcode"/></aeo:PostcodeCode></xsl:if>
          <aeo:CountryID><xsl:value-of select="cl:translate('country', @country)"/></aeo:CountryID>
        </aeo:Address>
      </xsl:for-each>
      <xsl:if test="my:Tier"><aeo:CertificateTypeCode><xsl:value-of select="cl:translate('aeo-certificate-type', my:Tier)"/></aeo:CertificateTypeCode></xsl:if>
      <xsl:if test="my:Status"><aeo:StatusCode><xsl:value-of select="cl:translate('aeo-status', my:Status)"/></aeo:StatusCode></xsl:if>
      <xsl:if test="my:ValidFrom"><aeo:ValidFromDate><xsl:value-of select="my:ValidFrom"/></aeo:ValidFromDate></xsl:if>
      <xsl:if test="my:ValidTo"><aeo:ValidToDate><xsl:value-of select="my:ValidTo"/></aeo:ValidToDate></xsl:if>
      <xsl:for-each select="my:Suspended">
        <aeo:Suspension>
          <aeo:StartDate><xsl:value-of select="@from"/></aeo:StartDate>
          <xsl:if test="@to"><aeo:EndDate><xsl:value-of select="@to"/></aeo:EndDate></xsl:if>
          <xsl:if test="normalize-space(.)"><aeo:Reason><xsl:value-of select="."/></aeo:Reason></xsl:if>
        </aeo:Suspension>
      </xsl:for-each>
    </aeo:Operator>
  </xsl:template>
</xsl:stylesheet>
