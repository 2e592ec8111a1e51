<?xml version="1.0" encoding="UTF-8"?>
<!-- my-nsw AEO list, outbound: canonical AEO list -> Customs Malaysia's MRA list format
     (urn:my:customs:aeo:1: one-letter codes, alpha-3 countries, attributes for header data). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:aeo="urn:swgw:canonical:aeo:1" xmlns:cl="urn:swgw:codelists"
    xmlns="urn:my:customs:aeo:1" exclude-result-prefixes="aeo cl">
  <xsl:output method="xml" encoding="UTF-8" indent="yes"/>

  <xsl:template match="/aeo:AEOOperatorList">
    <xsl:variable name="h" select="aeo:Header"/>
    <AeoList id="{$h/aeo:ListID}" kind="{cl:translate('aeo-list-type', $h/aeo:ListTypeCode)}"
             country="{cl:translate('country', $h/aeo:IssuingCountryID)}" issued="{$h/aeo:IssueDateTime}">
      <xsl:if test="$h/aeo:BasedOnListID"><xsl:attribute name="base"><xsl:value-of select="$h/aeo:BasedOnListID"/></xsl:attribute></xsl:if>
      <xsl:if test="$h/aeo:MRAReference"><xsl:attribute name="mra"><xsl:value-of select="$h/aeo:MRAReference"/></xsl:attribute></xsl:if>
      <Authority><xsl:value-of select="$h/aeo:IssuingAuthorityName"/></Authority>
      <xsl:apply-templates select="aeo:Operator"/>
    </AeoList>
  </xsl:template>

  <xsl:template match="aeo:Operator">
    <Company id="{aeo:OperatorID}" idType="{aeo:OperatorID/@schemeID}">
      <xsl:if test="aeo:ActionCode"><xsl:attribute name="action"><xsl:value-of select="cl:translate('aeo-action', aeo:ActionCode)"/></xsl:attribute></xsl:if>
      <xsl:if test="aeo:Name"><CompanyName><xsl:value-of select="aeo:Name"/></CompanyName></xsl:if>
      <xsl:for-each select="aeo:Address">
        <Addr country="{cl:translate('country', aeo:CountryID)}">
          <xsl:if test="aeo:LineOne"><xsl:attribute name="line"><xsl:value-of select="aeo:LineOne"/></xsl:attribute></xsl:if>
          <xsl:if test="aeo:CityName"><xsl:attribute name="city"><xsl:value-of select="aeo:CityName"/></xsl:attribute></xsl:if>
          <xsl:if test="aeo:PostcodeCode"><xsl:attribute name="postcode"><xsl:value-of select="aeo:PostcodeCode"/></xsl:attribute></xsl:if>
        </Addr>
      </xsl:for-each>
      <xsl:if test="aeo:CertificateTypeCode"><Tier><xsl:value-of select="cl:translate('aeo-certificate-type', aeo:CertificateTypeCode)"/></Tier></xsl:if>
      <xsl:if test="aeo:StatusCode"><Status><xsl:value-of select="cl:translate('aeo-status', aeo:StatusCode)"/></Status></xsl:if>
      <xsl:if test="aeo:ValidFromDate"><ValidFrom><xsl:value-of select="aeo:ValidFromDate"/></ValidFrom></xsl:if>
      <xsl:if test="aeo:ValidToDate"><ValidTo><xsl:value-of select="aeo:ValidToDate"/></ValidTo></xsl:if>
      <xsl:for-each select="aeo:Suspension">
        <Suspended from="{aeo:StartDate}">
          <xsl:if test="aeo:EndDate"><xsl:attribute name="to"><xsl:value-of select="aeo:EndDate"/></xsl:attribute></xsl:if>
          <xsl:value-of select="aeo:Reason"/>
        </Suspended>
      </xsl:for-each>
    </Company>
  </xsl:template>
</xsl:stylesheet>
