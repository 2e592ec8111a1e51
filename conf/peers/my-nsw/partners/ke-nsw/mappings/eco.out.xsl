<?xml version="1.0" encoding="UTF-8"?>
<!-- my-nsw e-CO, outbound: canonical UN/CEFACT-modelled e-CO -> Malaysia's own e-CO dialect
     (urn:my:dagang:eco:2: flat element names, attributes for codes, ISO alpha-3 countries, local
     port codes, own units, UN Comtrade HS edition codes, own status words). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:eco="urn:swgw:canonical:eco:1" xmlns:cl="urn:swgw:codelists"
    xmlns="urn:my:dagang:eco:2" exclude-result-prefixes="eco cl">
  <xsl:output method="xml" encoding="UTF-8" indent="yes"/>

  <xsl:template match="/eco:PreferentialCertificateOfOrigin">
    <CertificateOfOrigin version="2">
      <xsl:apply-templates select="eco:ExchangedDocument"/>
      <xsl:apply-templates select="eco:SpecifiedConsignment"/>
    </CertificateOfOrigin>
  </xsl:template>

  <xsl:template match="eco:ExchangedDocument">
    <Header>
      <CertNo><xsl:call-template name="scheme"/><xsl:value-of select="eco:ID"/></CertNo>
      <xsl:if test="eco:StatusCode"><Status><xsl:value-of select="cl:translate('document-status', eco:StatusCode)"/></Status></xsl:if>
      <IssuedAt><xsl:value-of select="eco:IssueDateTime"/></IssuedAt>
      <xsl:for-each select="eco:Remarks"><Remark><xsl:value-of select="."/></Remark></xsl:for-each>
      <xsl:apply-templates select="eco:Issuer" mode="party"><xsl:with-param name="name" select="'IssuingBody'"/></xsl:apply-templates>
      <xsl:for-each select="eco:FirstSignatoryDocumentAuthentication">
        <Signature at="{eco:ActualDateTime}">
          <xsl:if test="eco:SignatoryName"><xsl:attribute name="by"><xsl:value-of select="eco:SignatoryName"/></xsl:attribute></xsl:if>
          <xsl:for-each select="eco:IssueLogisticsLocation"><xsl:call-template name="place"><xsl:with-param name="name" select="'Place'"/></xsl:call-template></xsl:for-each>
        </Signature>
      </xsl:for-each>
    </Header>
  </xsl:template>

  <xsl:template match="eco:SpecifiedConsignment">
    <Shipment>
      <xsl:if test="eco:ID"><xsl:attribute name="ref"><xsl:value-of select="eco:ID"/></xsl:attribute></xsl:if>
      <xsl:apply-templates select="eco:Consignor" mode="party"><xsl:with-param name="name" select="'Exporter'"/></xsl:apply-templates>
      <xsl:apply-templates select="eco:Consignee" mode="party"><xsl:with-param name="name" select="'Importer'"/></xsl:apply-templates>
      <ExportCountry><xsl:value-of select="cl:translate('country', eco:ExportCountryID)"/></ExportCountry>
      <ImportCountry><xsl:value-of select="cl:translate('country', eco:ImportCountryID)"/></ImportCountry>
      <Agreement><xsl:value-of select="eco:ApplicableCrossBorderRegulatoryProcedure/eco:FreeTradeAgreementName"/></Agreement>
      <xsl:for-each select="eco:LoadingLogisticsLocation"><xsl:call-template name="place"><xsl:with-param name="name" select="'PortOfLoading'"/></xsl:call-template></xsl:for-each>
      <xsl:for-each select="eco:UnloadingLogisticsLocation"><xsl:call-template name="place"><xsl:with-param name="name" select="'PortOfDischarge'"/></xsl:call-template></xsl:for-each>
      <xsl:for-each select="eco:MainCarriageLogisticsTransportMovement">
        <Transport mode="{eco:ModeCode}">
          <xsl:if test="eco:ID"><xsl:attribute name="voyage"><xsl:value-of select="eco:ID"/></xsl:attribute></xsl:if>
          <xsl:if test="eco:UsedLogisticsTransportMeansName"><xsl:attribute name="vessel"><xsl:value-of select="eco:UsedLogisticsTransportMeansName"/></xsl:attribute></xsl:if>
          <xsl:if test="eco:DepartureDateTime"><xsl:attribute name="departs"><xsl:value-of select="eco:DepartureDateTime"/></xsl:attribute></xsl:if>
        </Transport>
      </xsl:for-each>
      <xsl:for-each select="eco:IncludedConsignmentItem">
        <ItemGroup>
          <xsl:if test="eco:ID"><xsl:attribute name="id"><xsl:value-of select="eco:ID"/></xsl:attribute></xsl:if>
          <xsl:apply-templates select="eco:IncludedTradeLineItem"/>
        </ItemGroup>
      </xsl:for-each>
    </Shipment>
  </xsl:template>

  <xsl:template match="eco:IncludedTradeLineItem">
    <xsl:variable name="p" select="eco:SpecifiedTradeProduct"/>
    <Item line="{eco:SequenceNumeric}">
      <xsl:if test="eco:InvoiceReference"><xsl:attribute name="invoice"><xsl:value-of select="eco:InvoiceReference"/></xsl:attribute></xsl:if>
      <Description><xsl:value-of select="$p/eco:Description"/></Description>
      <xsl:for-each select="$p/eco:DesignatedProductClassification/eco:ClassCode">
        <HSCode edition="{cl:translate('hs-version', @listVersionID)}"><xsl:value-of select="cl:check('hs', .)"/></HSCode>
      </xsl:for-each>
      <Origin criterion="{$p/eco:OriginCriterionCode}"><xsl:value-of select="cl:translate('country', $p/eco:OriginTradeCountry/eco:ID)"/></Origin>
      <xsl:for-each select="eco:GrossWeightMeasure"><GrossWeight unit="{cl:translate('unit', @unitCode)}"><xsl:value-of select="."/></GrossWeight></xsl:for-each>
      <xsl:for-each select="eco:NetWeightMeasure"><NetWeight unit="{cl:translate('unit', @unitCode)}"><xsl:value-of select="."/></NetWeight></xsl:for-each>
      <xsl:for-each select="eco:PhysicalReferencedLogisticsPackage">
        <Package count="{eco:ItemQuantity}" level="{eco:LevelCode}" type="{eco:TypeCode}">
          <xsl:if test="eco:ShippingMarks"><xsl:attribute name="marks"><xsl:value-of select="eco:ShippingMarks"/></xsl:attribute></xsl:if>
        </Package>
      </xsl:for-each>
    </Item>
  </xsl:template>

  <xsl:template match="*" mode="party">
    <xsl:param name="name"/>
    <xsl:element name="{$name}">
      <xsl:for-each select="eco:ID"><PartyId><xsl:call-template name="scheme"/><xsl:value-of select="."/></PartyId></xsl:for-each>
      <Name><xsl:value-of select="eco:Name"/></Name>
      <xsl:for-each select="eco:PostalAddress">
        <Address>
          <xsl:if test="eco:LineOne"><Street><xsl:value-of select="eco:LineOne"/></Street></xsl:if>
          <xsl:if test="eco:LineTwo"><Street2><xsl:value-of select="eco:LineTwo"/></Street2></xsl:if>
          <xsl:if test="eco:CityName"><City><xsl:value-of select="eco:CityName"/></City></xsl:if>
          <xsl:if test="eco:PostcodeCode"><Postcode><xsl:value-of select="eco:PostcodeCode"/></Postcode></xsl:if>
          <Country><xsl:value-of select="cl:translate('country', eco:CountryID)"/></Country>
        </Address>
      </xsl:for-each>
    </xsl:element>
  </xsl:template>

  <xsl:template name="place">
    <xsl:param name="name"/>
    <xsl:element name="{$name}">
      <xsl:attribute name="code"><xsl:value-of select="cl:translate('unlocode', eco:ID)"/></xsl:attribute>
      <xsl:if test="eco:Name"><xsl:attribute name="name"><xsl:value-of select="eco:Name"/></xsl:attribute></xsl:if>
    </xsl:element>
  </xsl:template>

  <xsl:template name="scheme">
    <xsl:for-each select="(self::eco:ID | eco:ID)[1]/@schemeID"><xsl:attribute name="scheme"><xsl:value-of select="."/></xsl:attribute></xsl:for-each>
  </xsl:template>
</xsl:stylesheet>
